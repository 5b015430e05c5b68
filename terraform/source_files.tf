# What the function runs, from deploy/source.json (the list .gcloudignore says to gcloud): its paths,
# less anything named as never shipped at any depth (bytecode, editors' and desktops' droppings), so
# none of it changes the content hash.
# No resources here (tests evaluate this file with `terraform console`); source.tf zips these files.
locals {
  source_list = jsondecode(file("${path.module}/../deploy/source.json"))
  source_found = flatten([
    for path in local.source_list.paths :
    concat(tolist(fileset(var.source_dir, path)), tolist(fileset(var.source_dir, "${path}/**")))
  ])
  source_never = flatten([
    for pair in setproduct(local.source_list.paths, local.source_list.never) : concat(
      tolist(fileset(var.source_dir, "${pair[0]}/**/${pair[1]}")),
      tolist(fileset(var.source_dir, "${pair[0]}/**/${pair[1]}/**")),
    )
  ])
  # source.tf reads each file as UTF-8 text, as the function's files are; anything else (a desktop's
  # metadata file not named above) is left out rather than failing the plan.
  source_files = sort([
    for file in setsubtract(local.source_found, local.source_never) : file
    if can(file("${var.source_dir}/${file}"))
  ])
}
