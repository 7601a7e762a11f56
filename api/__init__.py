"""Public chat API of the mesotherapy decision-aid assistant (FastAPI, api runtime)."""
