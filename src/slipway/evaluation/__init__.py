"""Model evaluation: metrics over scores and labels, predictors that give scores, and the
champion/challenger comparison a gate decides on."""
