"""Backend suites: the server fixtures live in tests/conftest.py so every suite shares one server each."""
