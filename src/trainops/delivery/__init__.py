"""Delivery of trained outputs to where teams use them (Hugging Face Hub, S3)."""
