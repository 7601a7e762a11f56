"""Bot runtime (CPython 3.10): knowledge base, text normalisation and Rasa glue.

Code here is imported by the Rasa server (the custom channel), the action server and
the build tools. It must stay free of side effects at import time.
"""
