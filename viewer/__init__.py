"""Zhiva Viewer desktop application (dearpygui frontend and app state)."""
