"""Models: the active set as a table (and saved as a zoo zip), and uploads: checkpoints, a zoo zip or Hugging Face
text models; inputs as images, series, a labelled test set or sentences."""

import streamlit as st

from kdviz.ui import uploads as up
from kdviz.ui.sidebar import render_sidebar, set_choice
from kdviz.ui.state import K_SET, UPLOAD_SET
from kdviz.ui.widgets import UPLOADED_DATA, Stop, active_set, guard, link_to_view, table_height

settings = render_sidebar()  # the shared sidebar; its values persist across pages
st.title("Models")
mset = None
with guard("show the active model set"):
    mset = active_set(settings)
    st.subheader(mset.name)
    table = mset.table()
    st.dataframe(table, hide_index=True, key="models_table", height=table_height(len(table)), column_config={
        "α": st.column_config.TextColumn(help="distillation strength (kdviz convention: 1.0 = no KD)")})
    up.save_zoo_button(mset, key="save_active_zoo")

st.header("Upload your own")
st.caption("**Models**: checkpoints (.safetensors, .pt/.pth/.bin/.ckpt state dicts, mdistiller's files without an "
           "extension), a zoo zip with zoo.json (such as the one saved above), or Hugging Face text classifiers (a zip "
           "of the folder save_pretrained wrote: config.json, model.safetensors or pytorch_model.bin, tokenizer "
           "files) for the Token rationales page. Pickled code is never run"
           + ("." if not up.trust_programs() else "; TorchScript/torch.export programs are allowed by the operator."))
st.caption(f"**Inputs**: {up.ACCEPTED_INPUTS}.")
ck_files = up.remembered_files("up_ckpt", st.file_uploader(
    "Checkpoints, a zoo (.zip) or text models (.zip)", type=None, accept_multiple_files=True, key="up_ckpt",
    help="any name: the content decides (mdistiller's files have no extension, timm's end in .pth.tar)"))
data_files = up.remembered_files("up_data", st.file_uploader(
    "Inputs", type=None, accept_multiple_files=True, key="up_data",  # CIFAR's python batches have no extension
    help="CIFAR python batches have no extension: upload test_batch with batches.meta (CIFAR-10) or test with meta "
         "(CIFAR-100)"))
if (ck_files or data_files) and not (st.session_state.get("up_ckpt") or st.session_state.get("up_data")):
    st.caption(f"Using the files uploaded earlier in this session: {', '.join(f.name for f in ck_files + data_files)}.")
    st.button("Clear the uploaded files", key="up_clear", on_click=up.forget_files)
if data_files:  # kept in session state, so the inputs stay after visiting other pages
    with guard("read the uploaded inputs"):
        st.session_state[UPLOADED_DATA] = up.load_data_files([(f.name, f.getvalue()) for f in data_files])
data = st.session_state.get(UPLOADED_DATA)
checkpoints = [f for f in ck_files or [] if not f.name.lower().endswith(".zip")]
if data_files and data is not None and (data.kind == "text" or (mset is not None and not checkpoints)):
    with guard("use the uploaded inputs" + ("" if data.kind == "text" or mset is None else f" with {mset.name}")):
        up.show_inputs_status(data, mset)  # checked against the active set (sentences: for the text page)
zips = [f for f in ck_files or [] if f.name.lower().endswith(".zip")]
text_zips = [f for f in zips if up.zip_kind(f.getvalue()) == "text"]
if text_zips:
    with guard("load the uploaded text models"):
        from kdviz.ui.text import text_uploads_section

        text_uploads_section(text_zips)
else:
    st.session_state.pop("kdviz_text_uploads", None)  # kdviz.ui.text.TEXT_UPLOADS (not imported without text)
with guard("load the uploaded models"):
    if not ck_files:
        raise Stop
    zoo_zips = [f for f in zips if f not in text_zips]
    if zoo_zips:
        zset, msg = up.load_uploaded_zoo(zoo_zips[0].name, zoo_zips[0].getvalue())
        if zset is None:
            st.error(msg, icon=":material/error:")
        else:
            st.session_state[UPLOAD_SET] = zset
            st.success(f"{zoo_zips[0].name}: zoo with {len(zset.models)} models"
                       + (f" and {len(zset.pool)} labelled inputs" if zset.pool is not None else ""),
                       icon=":material/check_circle:")
            st.button("Use the uploaded set", key="up_use_zoo", on_click=set_choice, args=(K_SET, "uploaded"))
        raise Stop
    ck_files = [f for f in ck_files if f not in text_zips]
    if not ck_files:
        raise Stop
    ck_files = up.with_parts(ck_files)  # a distiller's file holding a student and a teacher: two rows
    with st.spinner(f"Loading {len(ck_files)} checkpoint(s)…"):
        first = [up.load_uploaded_checkpoint(f.name, f.getvalue()) for f in ck_files]
    st.caption("Edit role, architecture, α and label; the teacher is the row marked teacher.")
    digests, editor_key = tuple(s.digest for s in first), "up_editor_" + "_".join(s.digest[:8] for s in first)
    table = st.data_editor(
        up.editor_start(digests, up.editor_rows([f.name for f in ck_files], first), editor_key), hide_index=True,
        key=editor_key, disabled=["file"], column_config={
            "role": st.column_config.SelectboxColumn(options=["teacher", "student"], required=True),
            "architecture": st.column_config.TextColumn(help=up.ARCH_HELP),  # any timm name too, not a list
            "α": st.column_config.NumberColumn(min_value=0.0, max_value=1.0, step=0.05, format="%.2f"),
        })
    up.remember_editor(digests, table)  # the edits outlive a visit to another page
    statuses = []
    for f, s, (_, row) in zip(ck_files, first, table.iterrows(), strict=True):
        if row["architecture"] and (not s.ok or row["architecture"] != s.loaded.arch):
            s = up.load_uploaded_checkpoint(f.name, f.getvalue(), arch=row["architecture"])
        statuses.append(s)
        up.show_file_status(s)
    loaded = [s for s in statuses if s.ok]
    if not loaded:
        raise Stop
    teacher_rows = [i for i, (_, r) in enumerate(table.iterrows()) if r["role"] == "teacher" and statuses[i].ok]
    t = (statuses[teacher_rows[0]] if teacher_rows else loaded[0]).loaded
    size, mean, std = up.normalisation_controls(t)
    pool, classes = None, ()
    if data is not None and data.kind != "text":
        with guard("read the uploaded inputs"):
            got = up.decode_data(data, channels=t.in_channels, size=size)
            pool, classes = got.pool, got.class_names
            st.caption(f"{len(pool)} input(s) loaded" + (" — " + "; ".join(got.warnings[:3]) if got.warnings else ""))
            if pool.x.ndim == 4:
                st.image(up.preview(pool), caption="first inputs, enlarged (model input size)")
            for msg in got.errors:
                st.error(msg, icon=":material/error:")
    uset, problems = up.build_set(statuses, table, size=size, mean=mean, std=std, pool=pool, class_names=classes)
    for p in problems:
        st.warning(p)
    st.session_state[UPLOAD_SET] = uset
    (st.success if uset.students and not problems else st.warning)(
        f"Uploaded set: teacher {uset.teacher.id} and {len(uset.students)} student(s)"
        + ("." if uset.students else " — no student can be compared with this teacher (see above)."))
    with st.container(horizontal=True):
        st.button("Use the uploaded set", key="up_use", on_click=set_choice, args=(K_SET, "uploaded"))
        up.save_zoo_button(uset, key="save_upload_zoo")  # roles, α and architectures as edited in the table
link_to_view()
