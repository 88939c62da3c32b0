"""The Great Expectations expectations a `.checks.yml` may name, with their arguments: a snapshot of
GX's own classes, so that loading the definitions need not import GX (seconds). After upgrading GX,
tests/test_quality.py fails until it is regenerated (meanwhile `quality.checks.expectation_fields`
asks the installed GX itself):

    python -c "from pipelines.quality.gx_expectations import regenerate; regenerate()"
"""

from pathlib import Path

_BEGIN, _END = "# <snapshot>\n", "# </snapshot>\n"

# <snapshot>
GX_VERSION = "1.24.1"
# class name: its fields (the arguments it takes), space-separated
EXPECTATION_FIELDS: dict[str, str] = {
    "ExpectColumnDistinctValuesToBeInSet": "batch_id catch_exceptions column condition_parser description id meta notes rendered_content result_format row_condition severity value_set windows",
    "ExpectColumnDistinctValuesToContainSet": "batch_id catch_exceptions column condition_parser description id meta notes rendered_content result_format row_condition severity value_set windows",
    "ExpectColumnDistinctValuesToEqualSet": "batch_id catch_exceptions column condition_parser description id meta notes rendered_content result_format row_condition severity value_set windows",
    "ExpectColumnKLDivergenceToBeLessThan": "batch_id bucketize_data catch_exceptions column condition_parser description id internal_weight_holdout max_value meta min_value notes partition_object rendered_content result_format row_condition severity tail_weight_holdout threshold windows",
    "ExpectColumnMaxToBeBetween": "batch_id catch_exceptions column condition_parser description id max_value meta min_value notes rendered_content result_format row_condition severity strict_max strict_min windows",
    "ExpectColumnMeanToBeBetween": "batch_id catch_exceptions column condition_parser description id max_value meta min_value notes rendered_content result_format row_condition severity strict_max strict_min windows",
    "ExpectColumnMedianToBeBetween": "batch_id catch_exceptions column condition_parser description id max_value meta min_value notes rendered_content result_format row_condition severity strict_max strict_min windows",
    "ExpectColumnMinToBeBetween": "batch_id catch_exceptions column condition_parser description id max_value meta min_value notes rendered_content result_format row_condition severity strict_max strict_min windows",
    "ExpectColumnMostCommonValueToBeInSet": "batch_id catch_exceptions column condition_parser description id meta notes rendered_content result_format row_condition severity ties_okay value_set windows",
    "ExpectColumnPairValuesAToBeGreaterThanB": "batch_id catch_exceptions column_A column_B condition_parser description id ignore_row_if meta mostly notes or_equal rendered_content result_format row_condition severity windows",
    "ExpectColumnPairValuesToBeEqual": "batch_id catch_exceptions column_A column_B condition_parser description id ignore_row_if meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectColumnPairValuesToBeInSet": "batch_id catch_exceptions column_A column_B condition_parser description id ignore_row_if meta mostly notes rendered_content result_format row_condition severity value_pairs_set windows",
    "ExpectColumnProportionOfNonNullValuesToBeBetween": "batch_id catch_exceptions column condition_parser description id library_metadata max_value meta min_value notes rendered_content result_format row_condition severity strict_max strict_min windows",
    "ExpectColumnProportionOfUniqueValuesToBeBetween": "batch_id catch_exceptions column condition_parser description id library_metadata max_value meta min_value notes rendered_content result_format row_condition severity strict_max strict_min windows",
    "ExpectColumnQuantileValuesToBeBetween": "allow_relative_error batch_id catch_exceptions column condition_parser description id meta notes quantile_ranges rendered_content result_format row_condition severity windows",
    "ExpectColumnStdevToBeBetween": "batch_id catch_exceptions column condition_parser description id max_value meta min_value notes rendered_content result_format row_condition severity strict_max strict_min windows",
    "ExpectColumnSumToBeBetween": "batch_id catch_exceptions column condition_parser description id max_value meta min_value notes rendered_content result_format row_condition severity strict_max strict_min windows",
    "ExpectColumnToExist": "batch_id catch_exceptions column column_index description id meta notes rendered_content result_format severity windows",
    "ExpectColumnTypeToBe": "batch_id catch_exceptions column description id meta notes rendered_content result_format severity type_ windows",
    "ExpectColumnUniqueValueCountToBeBetween": "batch_id catch_exceptions column condition_parser description id library_metadata max_value meta min_value notes rendered_content result_format row_condition severity strict_max strict_min windows",
    "ExpectColumnValueLengthsToBeBetween": "batch_id catch_exceptions column condition_parser description id max_value meta min_value mostly notes rendered_content result_format row_condition severity strict_max strict_min windows",
    "ExpectColumnValueLengthsToEqual": "batch_id catch_exceptions column condition_parser description id meta mostly notes rendered_content result_format row_condition severity value windows",
    "ExpectColumnValueZScoresToBeLessThan": "batch_id catch_exceptions column condition_parser description double_sided id meta mostly notes rendered_content result_format row_condition severity threshold windows",
    "ExpectColumnValuesToBeBetween": "batch_id catch_exceptions column condition_parser description id max_value meta min_value mostly notes rendered_content result_format row_condition severity strict_max strict_min windows",
    "ExpectColumnValuesToBeDateutilParseable": "batch_id catch_exceptions column condition_parser description id library_metadata meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToBeDecreasing": "batch_id catch_exceptions column condition_parser description id library_metadata meta mostly notes rendered_content result_format row_condition severity strictly windows",
    "ExpectColumnValuesToBeInSet": "batch_id catch_exceptions column condition_parser description id meta mostly notes rendered_content result_format row_condition severity value_set windows",
    "ExpectColumnValuesToBeInTypeList": "batch_id catch_exceptions column condition_parser description id meta mostly notes rendered_content result_format row_condition severity type_list windows",
    "ExpectColumnValuesToBeIncreasing": "batch_id catch_exceptions column condition_parser description id library_metadata meta mostly notes rendered_content result_format row_condition severity strictly windows",
    "ExpectColumnValuesToBeJsonParseable": "batch_id catch_exceptions column condition_parser description id library_metadata meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToBeNull": "batch_id catch_exceptions column condition_parser description id meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToBeOfType": "batch_id catch_exceptions column condition_parser description id meta mostly notes rendered_content result_format row_condition severity type_ windows",
    "ExpectColumnValuesToBeUnique": "batch_id catch_exceptions column condition_parser description id meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToMatchJsonSchema": "batch_id catch_exceptions column condition_parser description id json_schema library_metadata meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToMatchLikePattern": "batch_id catch_exceptions column condition_parser description escape id like_pattern meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToMatchLikePatternList": "batch_id catch_exceptions column condition_parser description escape id like_pattern_list match_on meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToMatchRegex": "batch_id catch_exceptions column condition_parser description id meta mostly notes regex rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToMatchRegexList": "batch_id catch_exceptions column condition_parser description id match_on meta mostly notes regex_list rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToMatchStrftimeFormat": "batch_id catch_exceptions column condition_parser description id meta mostly notes rendered_content result_format row_condition severity strftime_format windows",
    "ExpectColumnValuesToNotBeInSet": "batch_id catch_exceptions column condition_parser description id meta mostly notes rendered_content result_format row_condition severity value_set windows",
    "ExpectColumnValuesToNotBeNull": "batch_id catch_exceptions column condition_parser description id meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToNotBeOutliers": "batch_id catch_exceptions column condition_parser description id meta method mostly multiplier notes rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToNotMatchLikePattern": "batch_id catch_exceptions column condition_parser description escape id like_pattern meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToNotMatchLikePatternList": "batch_id catch_exceptions column condition_parser description escape id like_pattern_list meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToNotMatchRegex": "batch_id catch_exceptions column condition_parser description id meta mostly notes regex rendered_content result_format row_condition severity windows",
    "ExpectColumnValuesToNotMatchRegexList": "batch_id catch_exceptions column condition_parser description id meta mostly notes regex_list rendered_content result_format row_condition severity windows",
    "ExpectCompoundColumnsToBeUnique": "batch_id catch_exceptions column_list condition_parser description id ignore_row_if meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectMulticolumnSumToEqual": "batch_id catch_exceptions column_list condition_parser description id ignore_row_if meta mostly notes rendered_content result_format row_condition severity sum_total windows",
    "ExpectMulticolumnValuesToBeEqual": "batch_id catch_exceptions column_list condition_parser description id ignore_row_if meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectMulticolumnValuesToBeUnique": "batch_id catch_exceptions column column_list condition_parser description id ignore_row_if library_metadata meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectQueryResultsToMatchComparison": "base_query batch_id catch_exceptions comparison_data_source_name comparison_query description id meta mostly notes rendered_content result_format severity windows",
    "ExpectSelectColumnValuesToBeUniqueWithinRecord": "batch_id catch_exceptions column_list condition_parser description id ignore_row_if meta mostly notes rendered_content result_format row_condition severity windows",
    "ExpectTableColumnCountToBeBetween": "batch_id catch_exceptions description id max_value meta min_value notes rendered_content result_format severity windows",
    "ExpectTableColumnCountToEqual": "batch_id catch_exceptions description id meta notes rendered_content result_format severity value windows",
    "ExpectTableColumnsToMatchOrderedList": "batch_id catch_exceptions column_list description id meta notes rendered_content result_format severity windows",
    "ExpectTableColumnsToMatchSet": "batch_id catch_exceptions column_set description exact_match id meta notes rendered_content result_format severity windows",
    "ExpectTableRowCountToBeBetween": "batch_id catch_exceptions condition_parser description id max_value meta min_value notes rendered_content result_format row_condition severity strict_max strict_min windows",
    "ExpectTableRowCountToEqual": "batch_id catch_exceptions condition_parser description id meta notes rendered_content result_format row_condition severity value windows",
    "ExpectTableRowCountToEqualOtherTable": "batch_id catch_exceptions condition_parser description id meta notes other_table_name rendered_content result_format row_condition severity windows",
    "Expectation": "catch_exceptions description id meta notes rendered_content result_format severity windows",
    "UnexpectedRowsExpectation": "batch_id catch_exceptions description id meta notes rendered_content result_format severity unexpected_rows_query windows",
}
# </snapshot>


def regenerate() -> None:
    """Rewrite the snapshot above from the installed GX."""
    import importlib.metadata

    from pipelines.quality.checks import installed_expectation_fields

    fields = installed_expectation_fields()
    entries = "".join(f'    "{name}": "{" ".join(sorted(fields[name]))}",\n' for name in sorted(fields))
    snapshot = (
        f'GX_VERSION = "{importlib.metadata.version("great_expectations")}"\n'
        "# class name: its fields (the arguments it takes), space-separated\n"
        f"EXPECTATION_FIELDS: dict[str, str] = {{\n{entries}}}\n"
    )
    text = Path(__file__).read_text(encoding="utf-8")
    head, _, rest = text.partition(_BEGIN)
    _, _, tail = rest.partition(_END)
    Path(__file__).write_text(head + _BEGIN + snapshot + _END + tail, encoding="utf-8")
