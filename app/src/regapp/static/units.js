// Fills the province, district, commune, village and polling station lists from /api/units,
// each from the choice above it, and keeps what the form was sent back with.
(function () {
  "use strict";
  var form = document.getElementById("registration");
  if (!form) { return; }
  var order = ["province_code", "district_code", "commune_code", "village_code"];
  var station = form.elements.polling_station;

  function fill(select, items, label) {
    var keep = select.dataset.value || select.value;
    select.innerHTML = "";
    var blank = document.createElement("option");
    blank.value = ""; blank.textContent = label;
    select.appendChild(blank);
    items.forEach(function (item) {
      var option = document.createElement("option");
      option.value = item.code;
      option.textContent = item.code + " · " + item.name_km + " · " + item.name_latin;
      if (item.code === keep) { option.selected = true; }
      select.appendChild(option);
    });
    select.dataset.value = "";
  }

  function load(index, parent) {
    var url = "/api/units" + (parent ? "?parent=" + encodeURIComponent(parent) : "");
    return fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (data) {
        fill(form.elements[order[index]], data.units, "–");
        if (index === 3) { fill(station, data.stations, "–"); }
        var chosen = form.elements[order[index]].value;
        if (chosen && index < 3) { return load(index + 1, chosen); }
        return null;
      });
  }

  order.forEach(function (name, index) {
    form.elements[name].addEventListener("change", function () {
      for (var i = index + 1; i < order.length; i++) { fill(form.elements[order[i]], [], "–"); }
      if (index < 3) { fill(station, [], "–"); }
      if (form.elements[name].value && index < 3) { load(index + 1, form.elements[name].value); }
    });
  });
  load(0, null);
}());
