"""The long-running processes: the daemon (the Arena), the Task Master, the Weaver that
supervises them, and the Panel Tavern server. Each takes a `store.home.Home`, never the
`Realm` facade above it."""
