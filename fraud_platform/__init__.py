"""Core library of the fraud platform."""

from fraud_platform.governance.pci import install_redaction

install_redaction()  # no card number or e-mail reaches a log of any platform process
