"""The realm home on disk: its layout (paths), realm.toml (config, settings), the
ledger (append-only Parquet segments + views), status files, locks and pids (process),
the vault, start-up repairs of checkpoints, and `Home` (paths + ledger + config), what
every service takes. Storage only: below it is only `hero_model` (profile defaults for
realm.toml); it imports nothing of the realm above it."""
