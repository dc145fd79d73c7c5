//! notebook-volumes: storage for Jupyter notebook pods at admission time.
