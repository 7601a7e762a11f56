-- Rasa's tracker store beside the API's database (ops/datastores.py does the same).
CREATE DATABASE meso_tracker;
