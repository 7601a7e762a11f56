"""The knowledge base: load and validate (``loader``), index (``index``), choose an entry
(``retriever``), build (``build``) and load the built result at run time (``runtime``)."""
