"""What the notebook tests share: reading a notebook's cells and tags."""


def tags(cell):
    return cell.metadata.get("tags", [])


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]
