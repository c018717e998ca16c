"""geoplan: Sozialraumbudgets für die Jugendhilfeplanung.

Pipeline: boundaries -> indicators -> need model -> allocation -> equity -> outputs.
"""

__version__ = "0.1.0"
