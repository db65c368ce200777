"""The Oracle page alone: `panel serve widgets/oracle.py --address 127.0.0.1`, at /oracle,
or beside the Tavern: `panel serve widgets/tavern.py widgets/oracle.py --address 127.0.0.1`. The same page as
the app's /oracle route (widgets/app.py): a session per browser tab over the process's
one Realm, hence one model pool shared by every session.

The realm home is REALM_HOME (default: the checkout)."""

from __future__ import annotations

from realm_widgets.app import serve_alone

if __name__.startswith("bokeh"):
    serve_alone("oracle")
