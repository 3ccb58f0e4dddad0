"""Discord glue: one cog per area. Cogs parse interactions, call services in `bot/`, and render answers."""
