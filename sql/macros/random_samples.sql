/* random_samples(lists): 5 request ids drawn at random with a fixed seed from a list of daily draw
   lists (request_id[], each the day's 5 ids with the smallest md5, as the lever marts keep them:
   `min_by(request_id, md5(request_id), 5)`). The md5 of an id is its draw, so the same ids come
   back on every run, and the window's 5 smallest draws are among its days' 5 smallest: merging
   the days' draws gives exactly the uniform sample of the whole window - beside the costliest
   (top_samples), the calls a reader can take as typical. NULL lists are skipped. */
create or replace macro random_samples(lists) as
    list_transform(
        list_slice(
            list_sort(list_transform(
                list_distinct(flatten(list_filter(lists, lambda l: l is not null))),
                lambda id: {'draw': md5(id), 'request_id': id}
            )),
            1,
            5
        ),
        lambda s: s.request_id
    )
