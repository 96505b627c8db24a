"""Evaluation on generated data: how well the pipeline recovers what the generator planted.

The only code that reads the generator's truth files. The pipeline's production assets never
import it; the definitions add its checks only where a truth folder exists (generated data).
"""
