"""The storage conformance suite: every verb of every port, on every backend (River's
``riverdrivertest``, Oban's engine tests)."""
