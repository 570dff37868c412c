"""Core library of the fraud platform."""
