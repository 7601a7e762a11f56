"""The red-flag and refusal rules, with their lexicons (see README.md here)."""
