"""The desktop app: a thin dearpygui view over plain-Python state.

Models (`state`, `servers_state`, `ui_thread`, `display`) never import dearpygui and
are tested without a display; views (`shell`, `servers_page`, `fonts`, `theme`, `main`)
are the only modules here that do. Importing this package imports neither, so
``viewer.app.main`` can open the window before the network layer is even loaded.
"""
