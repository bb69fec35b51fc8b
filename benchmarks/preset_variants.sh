# `--preset quality` on rainier + Starry Night with one thing changed per run, at
# 1024 px, scored (--score) and timed; the pictures land in $OUT. Run on the lent
# H100 from the repo root with the weights and images carried in .gpu/ (RESULTS.md,
# "GPU", has how), 2026-11-28; docs/make_sheets.py preset-quality-sliced lays them side by side.
set -u
mkdir -p /tmp/bwhome/weights ../shared && python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('.gpu/w.xz'),open('/tmp/bwhome/weights/vgg16-caffe-imagenet.safetensors','wb'))" && ln -sfn $PWD/.gpu/images ../shared/images
export BRUSHWORK_HOME=/tmp/bwhome PYTHONPATH=$PWD/src
R=../shared/images/d2l/rainier.jpg; S=../shared/images/styles/starry_night.jpg
run() { n=$1; shift; s=$(date +%s.%N); python3 -m brushwork stylize $R $S -o $OUT/$n.jpg --score -q "$@"; e=$(date +%s.%N); echo "$n: $(python3 -c "import json;r=json.load(open('$OUT/$n.jpg.json'));print(r['quality'], [ (s['width'],s['iterations']) for s in r['stages_run']])") $(python3 -c "print(round($e-$s,1))") s"; rm -f $OUT/$n.jpg.json; }
run default512
run q_it30 --preset quality --iterations 30
run q_scales3 --preset quality --scales 3
run q_no51 --preset quality --style-layers conv1_1,conv2_1,conv3_1,conv4_1
run q_sliced --preset quality --style-loss sliced
run q_it500 --preset quality --iterations 500
