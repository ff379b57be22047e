"""SOR relaxation: choose the relaxation parameter ω for each linear system of a sequence.

Khodak, Chow, Balcan & Talwalkar, "Learning to Relax: Setting Solver Parameters Across a
Sequence of Linear System Instances", ICLR 2024.
"""
