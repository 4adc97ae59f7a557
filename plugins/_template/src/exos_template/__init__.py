"""exos-template: a copyable skeleton of an exos plugin."""
