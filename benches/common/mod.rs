//! The poster's inverse problem as the benchmarks run it: one Adam step (forward, backward,
//! update) of `bench/scaling.imgx` on an n×n generated image, through the same engine
//! `imgx run` uses.

use imgx::eval::Values;
use imgx::io::DiskIo;
use imgx::lower::{self, Override, Program, Step};
use imgx::ops::Dispatch;
use imgx::optim::State;
use imgx::{grad, syntax};

/// Sets up the process as `imgx run` does: freed memory kept, and the threads `IMGX_THREADS`
/// asks for (by default one per core). Returns their number.
pub fn threads() -> usize {
    imgx::run::keep_freed_memory();
    let threads = std::env::var("IMGX_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(num_cpus::get_physical);
    imgx::par::set_threads(threads);
    threads
}

/// The checked program, its values and the optimiser's state, ready for [`Problem::step`].
pub struct Problem<T: Dispatch> {
    program: Program,
    io: DiskIo,
    values: Values<T>,
    /// Which of the program's steps is the `optimize`.
    at: usize,
    relevant: Vec<bool>,
    dirty: Vec<bool>,
    state: State<T>,
}

impl<T: Dispatch> Problem<T> {
    /// The step at n×n, its learnable set to the generated image.
    pub fn new(n: usize) -> Self {
        let src = include_str!("../../bench/scaling.imgx");
        let set = |name: &str, value: usize| Override {
            name: name.into(),
            value: value.to_string(),
        };
        let dir = std::env::temp_dir();
        let io = DiskIo::new(dir.clone(), dir);
        let script = syntax::parse(src).expect("parses");
        let sets = [set("size", n), set("n_steps", 1)];
        let program = lower::lower(src, &script, &sets, &io).expect("checks");
        let mut values = Values::<T>::new(&program.graph);
        for step in &program.steps {
            if let Step::Learn { node, init } = step {
                imgx::run::learn(&program, *node, *init, &mut values, &io).expect("learn");
            }
        }
        let at = (program.steps.iter())
            .position(|s| matches!(s, Step::Optimize(_)))
            .expect("an optimize statement");
        let Step::Optimize(o) = &program.steps[at] else {
            unreachable!("found above")
        };
        let graph = &program.graph;
        let relevant = grad::relevant(graph, o.loss, &o.over);
        let dirty = graph.descendants(&o.over);
        let types: Vec<_> = o.over.iter().map(|id| graph.node(*id).ty).collect();
        let state = o.optimizer.init::<T>(&types);
        Problem {
            program,
            io,
            values,
            at,
            relevant,
            dirty,
            state,
        }
    }

    /// One Adam step.
    pub fn step(&mut self) {
        let Step::Optimize(o) = &self.program.steps[self.at] else {
            unreachable!("`new` found the optimize statement here")
        };
        let graph = &self.program.graph;
        let v = &mut self.values;
        v.compute(graph, &[o.loss], &self.io).expect("forward");
        imgx::run::update(graph, v, o, &self.relevant, &self.dirty, &mut self.state)
            .expect("finite");
    }
}
