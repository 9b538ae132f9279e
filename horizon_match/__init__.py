"""horizon-match: match EU Horizon calls to the members of a technology club."""

__version__ = "0.1.0"
