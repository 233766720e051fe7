"""Offline measurement of the critic: labelled items (`_labelled`), their evaluation (`_evaluate`), precision and
recall (`_metrics`) and fitting a new calibration (`_fit`).

It builds what the task's rules see through the runtime critic's own `critic_inputs`, so a fitted
calibration is measured on exactly the inputs the running critic will give it.
"""
