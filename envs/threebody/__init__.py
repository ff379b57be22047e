"""The three-body adaptive time-stepping environments (Saz Ulibarrena & Portegies Zwart, 2025)."""
