"""pubdata: a public-data sharing and opening platform for the Zhejiang Public Data Regulation."""

__version__ = "0.1.0"
