# ruff: noqa: E501 - HTML rows read best kept on one line each; this module is only the template.
"""The report's HTML, as a Jinja template kept in Python so that it ships with the package.

Self-contained on purpose: inline CSS, images as base64 data URIs, no script and no external
resource, so that the file opens the same from a mail attachment, a USB stick or a browser offline.
"""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
  :root { --ok:#2f855a; --bad:#c53030; --muted:#718096; --line:#e2e8f0; --bg:#f7fafc; }
  body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK JP",
         "Hiragino Sans", "Microsoft YaHei", sans-serif; margin: 0; color: #1a202c; background: #fff; }
  header { background: #22543d; color: #fff; padding: 18px 28px; }
  header h1 { margin: 0 0 4px 0; font-size: 22px; }
  header .sub { opacity: .85; font-size: 13px; }
  main { padding: 8px 28px 40px 28px; max-width: 1200px; }
  h2 { border-bottom: 2px solid var(--line); padding-bottom: 4px; margin-top: 32px; font-size: 18px; }
  h3 { font-size: 15px; margin-bottom: 6px; }
  table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px 0; }
  th, td { border: 1px solid var(--line); padding: 4px 8px; vertical-align: top; text-align: left; }
  th { background: var(--bg); }
  td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
  .card { border: 1px solid var(--line); border-left: 6px solid var(--muted); border-radius: 6px;
          padding: 8px 12px; min-width: 170px; background: var(--bg); }
  .card.up { border-left-color: var(--ok); } .card.down { border-left-color: var(--bad); }
  .card .cat { font-weight: 600; font-size: 13px; }
  .card .val { font-size: 20px; font-weight: 700; }
  .card .small { font-size: 11px; color: var(--muted); }
  .up { color: var(--ok); } .down { color: var(--bad); } .muted { color: var(--muted); }
  .verdict { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 600;
             background: #c6f6d5; }
  .verdict.mild { background: #fefcbf; } .verdict.strong { background: #fed7d7; }
  .badge { display: inline-block; font-size: 10px; padding: 0 5px; border-radius: 6px;
           background: #fed7d7; color: #742a2a; margin-left: 4px; }
  .badge.good { background: #c6f6d5; color: #22543d; }
  pre { white-space: pre-wrap; word-break: break-word; margin: 0; font-family: inherit; font-size: 12px; }
  img { max-width: 100%; border: 1px solid var(--line); border-radius: 4px; }
  .samples td { max-width: 260px; }
  .samples .reasoning { color: var(--muted); font-style: italic; border-bottom: 1px dashed var(--line);
                        margin-bottom: 4px; padding-bottom: 4px; }
  footer { color: var(--muted); font-size: 12px; margin-top: 40px; }
</style>
</head>
<body>
<header>
  <h1>{{ title }}</h1>
  <div class="sub">{{ subtitle }}</div>
</header>
<main>

<h2>At a glance</h2>
<p>{{ glance }}</p>
<div class="cards">
{% for card in cards %}
  <div class="card {{ card.trend }}">
    <div class="cat">{{ card.category }}</div>
    <div class="val">{{ card.value }}</div>
    <div class="small">{{ card.metric }}</div>
    <div class="small {{ card.trend }}">{{ card.delta }}</div>
  </div>
{% endfor %}
</div>
<table>
  <tr><th>model</th><th>what it is</th></tr>
  {% for m in models %}<tr><td><b>{{ m.key }}</b></td><td>{{ m.label }}</td></tr>{% endfor %}
</table>

{% if ablation %}
<h2>The runs compared (equal budgets)</h2>
<table>
  <tr><th>layout</th>{% for k in ablation.columns %}<th>{{ k }}</th>{% endfor %}</tr>
  {% for row in ablation.rows %}<tr><td><b>{{ row.layout }}</b></td>{% for c in row.cells %}<td class="num">{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table>
<p class="muted">Same base model, steps, sequence limit, schedule and seed. Validation losses are
not comparable across layouts (the bonsai layout's target includes its reasoning); compare the
answers.</p>
{% endif %}

{% if images.loss %}
<h2>Loss curves</h2>
<p class="muted">Training and validation loss of {{ primary }} over its steps; dotted lines are the
validation loss per category, dashed vertical lines the epoch boundaries.</p>
<img alt="loss curves" src="data:image/png;base64,{{ images.loss }}">
{% endif %}

<h2>Per category: {{ model_keys | join(" vs ") }}</h2>
{% if images.bars %}
<img alt="per-category results" src="data:image/png;base64,{{ images.bars }}">
{% endif %}
{% for block in metric_tables %}
<h3>{{ block.category }} <span class="muted">({{ block.n }} items)</span></h3>
<table>
  <tr><th>metric</th>{% for k in model_keys %}<th>{{ k }}</th>{% endfor %}
      {% for o in block.delta_keys %}<th>{{ primary }} − {{ o }} (95% CI)</th>{% endfor %}</tr>
  {% for row in block.rows %}
  <tr><td>{{ row.metric }}</td>
    {% for cell in row.cells %}<td class="num">{{ cell }}</td>{% endfor %}
    {% for d in row.deltas %}<td class="num {{ d.trend }}">{{ d.text }}</td>{% endfor %}
  </tr>
  {% endfor %}
</table>
{% if block.directions %}
<table><tr><th>direction</th>{% for k in model_keys %}<th>chrF · {{ k }}</th>{% endfor %}<th>n</th></tr>
{% for d in block.directions %}<tr><td>{{ d.direction }}</td>{% for c in d.cells %}<td class="num">{{ c }}</td>{% endfor %}<td class="num">{{ d.n }}</td></tr>{% endfor %}
</table>
{% endif %}
{% endfor %}

{% if val_loss_rows %}
<h2>Validation loss</h2>
{% if images.val_loss %}<img alt="validation loss per category" src="data:image/png;base64,{{ images.val_loss }}">{% endif %}
<table>
  <tr><th>category</th>{% for k in val_loss_keys %}<th>{{ k }}</th>{% endfor %}</tr>
  {% for row in val_loss_rows %}<tr><td>{{ row.category }}</td>{% for c in row.cells %}<td class="num">{{ c }}</td>{% endfor %}</tr>{% endfor %}
</table>
{% endif %}

<h2>Diagnostics</h2>
{% if memorisation %}
<h3>Memorisation <span class="verdict {{ memorisation.verdict }}">{{ memorisation.verdict }}</span></h3>
<table>
  <tr><th>final train loss</th><th>final validation loss</th><th>gap</th><th>best validation loss</th></tr>
  <tr><td class="num">{{ memorisation.final_train }}</td><td class="num">{{ memorisation.final_val }}</td>
      <td class="num">{{ memorisation.gap }}</td><td class="num">{{ memorisation.best_val }}</td></tr>
</table>
<ul>{% for note in memorisation.notes %}<li>{{ note }}</li>{% endfor %}</ul>
{% if memorisation.epoch_steps %}
<table><tr><th>epoch ends at step</th><th>loss before</th><th>loss after</th><th>step-down</th><th>usual fall</th></tr>
{% for s in memorisation.epoch_steps %}<tr><td class="num">{{ s.boundary }}</td><td class="num">{{ s.before }}</td><td class="num">{{ s.after }}</td><td class="num">{{ s.drop }}</td><td class="num">{{ s.usual_drop }}</td></tr>{% endfor %}
</table>
{% endif %}
{% endif %}

<h3>Suspected contradictions</h3>
{% if contradictions %}
{% for c in contradictions %}
<p><b>{{ c.records | join(", ") }}</b> <span class="muted">(found by {{ c.sources | join(" and ") }})</span>: {{ c.message }}</p>
<table><tr><th>id</th><th>category</th><th>language</th><th>instruction</th><th>output</th></tr>
{% for d in c.details %}<tr><td>{{ d.id }}</td><td>{{ d.category }}</td><td>{{ d.language }}</td><td><pre>{{ d.instruction }}</pre></td><td><pre>{{ d.output }}</pre></td></tr>{% endfor %}
</table>
{% endfor %}
<p class="muted">Fix one side with <code>bonsai data export</code> / <code>import</code>, then train again.</p>
{% else %}
<p class="muted">None found.</p>
{% endif %}

{% if hard_records %}
<h3>Records the model cannot fit</h3>
<p class="muted">Loss far above the rest of their category after training, with no other record asking the same thing: unusual, hard, or wrong on their own.</p>
<table><tr><th>id</th><th>category</th><th>language</th><th>instruction</th><th>output</th><th>loss</th><th>category median</th></tr>
{% for d in hard_records %}<tr><td>{{ d.id }}</td><td>{{ d.category }}</td><td>{{ d.language }}</td><td><pre>{{ d.instruction }}</pre></td><td><pre>{{ d.output }}</pre></td><td class="num">{{ d.loss }}</td><td class="num">{{ d.category_median }}</td></tr>{% endfor %}
</table>
{% endif %}

{% if loss_table %}
<h3>Where the loss comes from (category × language, {{ loss_table_model }})</h3>
<table><tr><th>category</th><th>language</th><th>records</th><th>target tokens</th><th>mean loss</th><th>share of all loss</th></tr>
{% for r in loss_table %}<tr><td>{{ r.category }}</td><td>{{ r.language }}</td><td class="num">{{ r.records }}</td><td class="num">{{ r.tokens }}</td><td class="num">{{ r.mean_loss }}</td><td class="num">{{ r.share }}</td></tr>{% endfor %}
</table>
{% endif %}

<h2>Sample outputs, side by side</h2>
<table class="samples">
  <tr><th>prompt</th><th>reference</th>{% for k in model_keys %}<th>{{ k }}</th>{% endfor %}</tr>
  {% for s in samples %}
  <tr>
    <td><span class="muted">{{ s.source }} · {{ s.category }} · {{ s.language }}</span><pre>{{ s.prompt }}</pre>
      {% if s.chat %}<span class="muted">chat read it as {{ s.chat.category }} · {{ s.chat.language or "?" }}{% if s.chat.notes %}; notes: {{ s.chat.notes | join("; ") }}{% else %}; no notes{% endif %}</span>{% endif %}</td>
    <td><pre>{{ s.reference }}</pre></td>
    {% for a in s.answers %}
    <td>{% if a.reasoning %}<div class="reasoning"><pre>{{ a.reasoning }}</pre></div>{% endif %}
        <pre>{{ a.text }}</pre>
        {% for b in a.badges %}<span class="badge {{ b.kind }}">{{ b.text }}</span>{% endfor %}</td>
    {% endfor %}
  </tr>
  {% endfor %}
</table>

<footer>
  {{ footer }}
</footer>
</main>
</body>
</html>
"""
