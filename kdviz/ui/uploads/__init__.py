"""What users upload on the Models page, by what is uploaded: checkpoints (:mod:`.checkpoints`), zoo zips in and
out (:mod:`.zoo`), the inputs uploader's files classified (:mod:`.files`) and decoded for a model set
(:mod:`.inputs`: images, series, a labelled test set, sentences in :mod:`.images`, :mod:`.series`,
:mod:`.datasets`, :mod:`.text`), the edited table and remembered files (:mod:`.editor`), normalisation
(:mod:`.normalisation`) and the model set built from it all (:mod:`.build`).

The names the Models page uses are re-exported here (``from kdviz.ui import uploads as up``).
"""

from kdviz.ui.uploads.build import build_set, label_space
from kdviz.ui.uploads.checkpoints import (
    ARCH_HELP,
    FileStatus,
    for_the_browser,
    guess_from_filename,
    load_uploaded_checkpoint,
    show_file_status,
    trust_programs,
    with_parts,
)
from kdviz.ui.uploads.datasets import read_dataset_upload
from kdviz.ui.uploads.editor import editor_rows, editor_start, forget_files, remember_editor, remembered_files
from kdviz.ui.uploads.files import ACCEPTED_INPUTS, DataUpload, UploadKind, load_data_files
from kdviz.ui.uploads.images import preview
from kdviz.ui.uploads.inputs import DecodedInputs, check_inputs, decode_data, fit_pool, show_inputs_status
from kdviz.ui.uploads.normalisation import normalisation_controls
from kdviz.ui.uploads.text import labelled_text_inputs, text_inputs
from kdviz.ui.uploads.zoo import export_problem, export_set, load_uploaded_zoo, save_zoo_button, zip_kind

__all__ = [
    "ACCEPTED_INPUTS",
    "ARCH_HELP",
    "DataUpload",
    "DecodedInputs",
    "FileStatus",
    "UploadKind",
    "build_set",
    "check_inputs",
    "decode_data",
    "editor_rows",
    "editor_start",
    "export_problem",
    "export_set",
    "fit_pool",
    "for_the_browser",
    "forget_files",
    "guess_from_filename",
    "label_space",
    "labelled_text_inputs",
    "load_data_files",
    "load_uploaded_checkpoint",
    "load_uploaded_zoo",
    "normalisation_controls",
    "preview",
    "read_dataset_upload",
    "remember_editor",
    "remembered_files",
    "save_zoo_button",
    "show_file_status",
    "show_inputs_status",
    "text_inputs",
    "trust_programs",
    "with_parts",
    "zip_kind",
]
