"""exos prediction markets: a deterministic FIFA World Cup 2026 model (markets come later)."""
