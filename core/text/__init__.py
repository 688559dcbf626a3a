"""Text pieces of the lessons: how a language model's batches are cut from one token stream."""
