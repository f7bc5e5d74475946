"""The Viewer's GUI-free parts: what each viewport shows and how, tested with no display.

Plain Python: no dearpygui import anywhere in this package, which one import-linter
contract checks as a whole; the views beside it (`viewer.app.viewer_page`,
`viewer.app.viewport_view`) only turn its state into widgets and input into calls.

- `viewport`: `ViewportState`, one viewport's slice, camera and contrast;
- `layout`: `LayoutState`, the grid of viewports, the active one, link groups;
- `sync`: matching slices by patient position for linked scrolling;
- `source`: the `ViewportSource` protocol and `SeriesSource` (a loader's series);
- `screen`: `ScreenImage`, the texels a viewport shows at screen resolution;
- `pyramids`: `PyramidCache`, pyramids of large frames built in the background.

Import the modules themselves: this package imports none of them, so the light ones
(`viewport`, `layout`, `sync`) stay on the app's startup path without pulling in
numpy, pydicom or the loader.
"""
