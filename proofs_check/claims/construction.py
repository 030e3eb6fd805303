"""Claims C1-C3: GLA implements (causal) WPGD. (Filled in by the construction work.)"""
