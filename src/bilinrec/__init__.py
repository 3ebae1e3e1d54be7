"""bilinrec: replication of AMHT-LRS (low-rank + sparse personalization) and Unlearn-ALS."""

__version__ = "0.1.0"
