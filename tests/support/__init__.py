"""Helpers and fixtures shared by the tests, one module per thing they own; tests/conftest.py
loads the fixtures through `pytest_plugins`, tests import the helpers."""
