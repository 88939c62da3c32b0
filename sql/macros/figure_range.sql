/* figure_range(low, high): a range of figures in words, 3 significant digits - "14.4" when both
   ends agree, "14.4 to 28.9" when they differ (a window's per-replica rates in a finding's words). */
create or replace macro figure_range(low, high) as
    case when low = high then printf('%.3g', low) else printf('%.3g to %.3g', low, high) end
