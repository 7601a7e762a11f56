"""Where Rasa keeps conversations: its SQL tracker store, tuned (tracker_store)."""
