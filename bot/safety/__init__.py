"""Safety checks that run on every message before normal routing: red flags and refusals."""
