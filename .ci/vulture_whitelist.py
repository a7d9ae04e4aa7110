"""Names vulture (``make lint``) cannot see used: each one's caller is outside Python's static reach."""

# st.cache_data keys: arguments a cached loader takes only so that Streamlit's cache tells inputs apart.
model_key  # noqa: B018 - kdviz/ui/compute.py
model_hashes  # noqa: B018 - kdviz/ui/compute.py, kdviz/ui/superfeatures.py
mtime  # noqa: B018 - kdviz/ui/report_view.py
manifest_hash  # noqa: B018 - kdviz/ui/sets.py
