"""Fakes of outside services, run as real local servers in tests."""
