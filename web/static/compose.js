// The compose form's files, made easier: drop them onto the picker, add
// more with several picks, see each one's name and size, and take one out.
// Without this script the plain file picker does the same job (one pick).
(function () {
  "use strict";
  var input = document.getElementById("files");
  var list = document.getElementById("chosen");
  if (!input || !list || typeof DataTransfer !== "function") {
    return;
  }
  var zone = input.closest(".dropzone");
  var chosen = new DataTransfer();
  var removeLabel = document.documentElement.lang === "fr" ? "Retirer" : "Remove";

  function size(bytes) {
    if (bytes < 1000) {
      return bytes + " B";
    }
    if (bytes < 1000 * 1000) {
      return Math.max(1, Math.round(bytes / 1000)) + " KB";
    }
    return (bytes / 1000000).toFixed(1) + " MB";
  }

  function show() {
    input.files = chosen.files;
    list.textContent = "";
    Array.prototype.forEach.call(chosen.files, function (file, index) {
      var item = document.createElement("li");
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = file.name + " (" + size(file.size) + ")";
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = removeLabel;
      remove.setAttribute("aria-label", removeLabel + " " + file.name);
      remove.addEventListener("click", function () {
        var kept = new DataTransfer();
        Array.prototype.forEach.call(chosen.files, function (other, at) {
          if (at !== index) {
            kept.items.add(other);
          }
        });
        chosen = kept;
        show();
        input.focus();
      });
      item.appendChild(name);
      item.appendChild(remove);
      list.appendChild(item);
    });
  }

  function add(files) {
    Array.prototype.forEach.call(files, function (file) {
      chosen.items.add(file);
    });
    show();
  }

  input.addEventListener("change", function () {
    // The picker replaces its files on each pick: keep the earlier ones too.
    var picked = Array.prototype.slice.call(input.files);
    input.files = chosen.files;
    add(picked);
  });
  if (zone) {
    zone.classList.add("enhanced");
    zone.addEventListener("dragover", function (event) {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", function () {
      zone.classList.remove("over");
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("over");
      if (event.dataTransfer && event.dataTransfer.files.length) {
        add(event.dataTransfer.files);
      }
    });
  }
})();
