"""The course on paper and on the web: handouts (`labkit handout`), the booklet and cheat sheets,
the static site (`labkit site`), student editions, and notebooks stored clean."""
