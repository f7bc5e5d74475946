"""Tests for render/: decoding, LUTs, VOI, photometric, geometry, textures."""
