/* eval_kit(lists): the request ids of an eval kit - calls to replay against a cheaper model before
   moving a feature to it - from a list of daily kit lists ([{input_decile, output_decile, draw,
   request_id}], as fct_model_fit_daily keeps them: per day, the 2 calls with the smallest draw
   (md5 of the id) in each cell of its prompt decile x answer decile). Across the days, each cell
   keeps its 2 smallest draws again: up to 200 ids, 2 per cell, stratified by prompt and answer
   size so short and long calls are both replayed, the same ids on every run. The cells are each
   day's deciles, not the window's: a window whose sizes shift keeps both days' strata.
   eval_kit_of_sorted(cells) does the picking on the cells sorted by cell, then draw. */
create or replace macro eval_kit_of_sorted(cells) as
    list_transform(
        list_filter(
            -- Each cell with the one 2 places before it: the lambda must not read `cells` itself (a
            -- macro's argument is expanded where it is used: the whole list, rebuilt per element).
            list_zip(cells, list_concat([null, null], cells), true),
            lambda pair: pair[2] is null
            or pair[2].input_decile <> pair[1].input_decile
            or pair[2].output_decile <> pair[1].output_decile
        ),
        lambda pair: pair[1].request_id
    );

create or replace macro eval_kit(lists) as
    eval_kit_of_sorted(list_sort(list_distinct(flatten(list_filter(lists, lambda l: l is not null)))))
