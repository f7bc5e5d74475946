"""Test support: the test PACS (Orthanc + nginx TLS) and the test data it serves."""
