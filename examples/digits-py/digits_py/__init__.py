"""Digits MLP in pure Python: the same 64-32-10 network and weights as examples/digits-mlp."""
