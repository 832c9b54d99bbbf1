"""Datagrove: a self-hosted data warehouse that speaks Domo's DataSet, Stream and Query APIs."""

__version__ = "0.1.0"
