"""Raters' files as raters and spreadsheets make them: read, unblinded, or rejected with a
reason; row numbers are the spreadsheet's (the header is row 1)."""

from __future__ import annotations

import io

import pandas as pd
from kedro.io import DatasetError

from product_descgen.evaluation.preference import build_kit
from product_descgen.evaluation.ratings import (
    REPLACED,
    UNKNOWN_ITEM,
    file_order,
    in_file_order,
    parse_rater_files,
    rater_from_file,
    read_ratings,
)
from tests.evaluation.test_preference import make_pairs


def as_read_by_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


def test_rejections_keep_valid_rows():
    sheet, key = build_kit(make_pairs(), n_items=6, seed=2)
    ids = list(key["item_id"])
    ana = pd.DataFrame(
        {
            "rater": ["ana"] * 5,
            "item_id": [ids[0], "item-0000000000", ids[1], ids[2], ids[0]],
            "choice": ["A", "A", "C", " Tie ", "b"],
        }
    )
    files = {
        "ana.csv": as_read_by_pandas(ana),
        "ben.csv": pd.DataFrame({"item_id": [ids[3]], "choice": ["a"]}),
        "broken.csv": pd.DataFrame({"rater": ["cy"], "item": [ids[0]], "choice": ["A"]}),
    }
    judgments, rejections = read_ratings(files, key)
    got = {(r.file, r.row, r.reason) for r in rejections.itertuples()}
    assert got == {
        ("ana.csv", 3, UNKNOWN_ITEM),
        ("ana.csv", 4, "invalid choice"),
        ("ana.csv", 2, REPLACED),  # row 6 changed it
        ("broken.csv", pd.NA, "missing column: item_id"),  # no row: the whole file
    }
    assert rejections.loc[rejections["reason"] == "invalid choice", "choice"].item() == "C"
    assert len(judgments) == 3
    by_key = judgments.set_index(["rater", "item_id"])
    system_b = key.set_index("item_id")["b_system"]
    assert by_key.loc[("ana", ids[0]), "choice"] == "B"  # the later judgment wins
    assert by_key.loc[("ana", ids[0]), "preferred"] == system_b[ids[0]]
    assert by_key.loc[("ana", ids[2]), "preferred"] == "tie"
    assert by_key.loc[("ben", ids[3]), "file"] == "ben.csv"  # rater from the file name


def test_bad_rater_files_are_rejections_and_the_good_ones_count():
    def boom() -> str:
        try:
            raise PermissionError("[Errno 13] Permission denied: 'judgments-dan.csv'")
        except PermissionError as err:  # as a Kedro dataset wraps it
            raise DatasetError("Failed while loading data from dataset TextDataset(...)") from err

    loaders = {
        "judgments-anna.csv": lambda: (
            "rater,item_id,choice\nanna,i1,A\nanna,i2,B,extra\nanna,i3,tie\n"
        ),
        "judgments-bob.csv": lambda: "",
        "judgments-carl.csv": lambda: 'rater,item_id,choice\ncarl,"i1,A\n',
        "judgments-dan.csv": boom,
    }
    frames, rejected = parse_rater_files(loaders)
    assert list(frames) == ["judgments-anna.csv"]
    assert frames["judgments-anna.csv"]["item_id"].tolist() == ["i1", "i3"]  # i3 not shifted
    reasons = dict(zip(rejected["file"], rejected["reason"], strict=True))
    assert reasons["judgments-anna.csv"].startswith("ragged row: 4 fields")
    assert reasons["judgments-bob.csv"] == "empty file"
    assert reasons["judgments-carl.csv"].startswith("unreadable file: Error")
    assert reasons["judgments-dan.csv"] == (  # the cause, not the dataset's preamble
        "unreadable file: PermissionError: [Errno 13] Permission denied: 'judgments-dan.csv'"
    )


def test_rater_files_in_the_encodings_spreadsheets_save_are_read():
    """Excel on Windows saves CSV in Windows-1252: a rater named José lost every rating."""
    text = "rater,item_id,choice\r\nJosé,i1,A\r\n"
    loaders = {
        "judgments-jose.csv": lambda: text.encode("cp1252"),
        "judgments-utf8.csv": lambda: text.encode("utf-8-sig"),
        "judgments-utf16.csv": lambda: text.encode("utf-16"),
    }
    frames, rejected = parse_rater_files(loaders)
    assert rejected.empty
    assert all(frame["rater"].tolist() == ["José"] for frame in frames.values())


def test_two_downloads_of_one_rater_are_one_rater():
    assert rater_from_file("judgments-anna.csv") == rater_from_file("judgments-anna (1).csv")
    assert rater_from_file("sheet (1).csv") != rater_from_file("sheet.csv")  # filled by hand


def read_files(texts: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The kit's key, and the judgments and rejections of rater files given as text with
    ``{0}``, ``{1}``... for the key's item ids."""
    _, key = build_kit(make_pairs(), n_items=4, seed=3)
    ids = list(key["item_id"])
    loaders = {name: (lambda t=text: t.format(*ids).encode()) for name, text in texts.items()}
    frames, unreadable = parse_rater_files(loaders)
    judgments, rejections = read_ratings(frames, key)
    return key, judgments, pd.concat([unreadable, rejections], ignore_index=True)


def test_a_later_download_wins_in_download_order_not_name_order():
    """'judgments-zed (2)' sorted after 'judgments-zed (10)', so an older rating won."""
    assert sorted(["z (10).csv", "z.csv", "z (2).csv", "z (1).csv"], key=file_order) == [
        "z.csv", "z (1).csv", "z (2).csv", "z (10).csv"
    ]  # fmt: skip
    _, judgments, rejections = read_files({
        "judgments-zed (10).csv": "rater,item_id,choice\nzed,{0},B\n",
        "judgments-zed (2).csv": "rater,item_id,choice\nzed,{0},A\n",
    })  # fmt: skip
    assert judgments["choice"].tolist() == ["B"]
    assert rejections[["file", "row", "reason"]].values.tolist() == [
        ["judgments-zed (2).csv", 2, REPLACED]
    ]


def test_files_as_spreadsheets_and_file_systems_save_them_are_read():
    """Semicolons (Excel in many locales) were rejected as 'missing column'; '.CSV' and other
    files were skipped without a word."""
    _, judgments, rejections = read_files({
        "judgments-eva.CSV": "rater,item_id,choice\neva,{0},A\n",
        "judgments-fritz.csv": "\ufeffrater;item_id;choice\r\nfritz;{1};tie\r\n",
        "judgments-gus.xlsx": "PK\x03\x04",
        ".DS_Store": "\x00",
    })  # fmt: skip
    assert sorted(judgments["rater"]) == ["eva", "fritz"]
    assert rejections[["file", "reason"]].values.tolist() == [
        ["judgments-gus.xlsx", "not a .csv file: save it as CSV"]
    ]


def test_one_rater_whatever_the_case_and_two_raters_with_copies_of_the_sheet():
    _, judgments, rejections = read_files({
        "judgments-kim.csv": "rater,item_id,choice\nKim,{0},A\nkim ,{1},B\n",
        "sheet.csv": "item_id,choice\n{0},A\n",
        "sheet (1).csv": "item_id,choice\n{0},B\n",
    })  # fmt: skip
    assert rejections.empty
    assert sorted(judgments["rater"]) == ["Kim", "Kim", "sheet", "sheet (1)"]


def test_a_ragged_row_keeps_the_spreadsheet_row_numbers_of_the_rows_after_it():
    _, _, rejections = read_files(
        {"a.csv": "rater,item_id,choice\nann,{0},A,x\nann,item-unknown,A\n"}
    )
    assert rejections[["row", "reason"]].values.tolist() == [
        [2, "ragged row: 4 fields, header has 3"], [3, UNKNOWN_ITEM]
    ]  # fmt: skip


def test_hidden_files_are_not_rater_files():
    names = [".gitkeep", "b.csv", ".DS_Store", "a.csv", ".ipynb_checkpoints/a-checkpoint.csv"]
    assert in_file_order(names) == ["a.csv", "b.csv"]
    assert in_file_order(["x1².csv", "x1.csv"]) == ["x1.csv", "x1².csv"]  # '²' is no number


def test_rejection_row_numbers_stay_whole_numbers_in_parquet(tmp_path):
    """They were written as floats (2.0), unlike the spreadsheet's row numbers."""
    _, _, rejections = read_files({"a.csv": "rater,item_id,choice\nann,item-unknown,A\n"})
    rejections.to_parquet(tmp_path / "r.parquet")
    assert pd.read_parquet(tmp_path / "r.parquet")["row"].tolist() == [2]
