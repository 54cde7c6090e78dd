"""The course, in three folders, one job each:

    notebook/   what runs in a notebook's kernel: setup(), lesson, exercises, the %%lab magic,
                tables, traces of live traffic, widgets
    printed/    the course on paper and on the web: handouts, booklet, cheat sheets, the site,
                student editions, notebooks stored clean
    replay/     the course without privileges: cells' stored outputs shown in their place,
                and the widgets' recorded traffic; where the course's notebooks are found
"""
